"""`python -m lowbit_with NAME=MODULE,... ARGS...`: the lowbit command with
these families in place of the installed entry points (subprocess tests)."""

import sys

from lowbit.kernels import _families
from lowbit.kernels.cli import main

specs = [tuple(s.split("=", 1)) for s in sys.argv[1].split(",") if s]
_families.family_specs = lambda: specs
sys.exit(main(sys.argv[2:]))
