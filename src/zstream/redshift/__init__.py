"""zstream.redshift"""
