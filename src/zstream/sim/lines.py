"""Rest-frame vacuum wavelengths (Å) of the spectral features the simulated populations carry.

Named constants rather than a table so that a population reads like its spectrum.
"""

LYMAN_LIMIT = 911.75
LY_ALPHA = 1215.67
N_V = 1240.14
SI_IV = 1397.61
C_IV = 1549.06
HE_II = 1640.42
C_III = 1908.73
MG_II = 2798.75

O_II_3726 = 3727.09
O_II_3729 = 3729.88
NE_III = 3870.86
CA_II_K = 3934.78
CA_II_H = 3969.59
H_DELTA = 4102.89
G_BAND = 4305.61
H_GAMMA = 4341.69
H_BETA = 4862.68
O_III_4959 = 4960.30
O_III_5007 = 5008.24
MG_B = 5176.70
FE_5270 = 5270.40
NA_D = 5895.60
O_I_6300 = 6302.05
N_II_6548 = 6549.86
H_ALPHA = 6564.61
N_II_6583 = 6585.27
S_II_6716 = 6718.29
S_II_6731 = 6732.67
CA_II_8498 = 8500.36
CA_II_8542 = 8544.44
CA_II_8662 = 8664.52

BREAK_4000 = 4000.0
"""Centre of the 4000 Å break (rest frame)."""

TIO_BANDS = ((7050.0, 7150.0), (7590.0, 7700.0), (8430.0, 8480.0))
"""Rest-frame ranges of the strongest TiO absorption bands in cool stars."""
