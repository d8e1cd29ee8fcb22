"""``python -m zstream.cli``: the ``zstream`` command without the console script (subprocess tests, replicas)."""

import sys

from zstream.cli import main

sys.exit(main())
