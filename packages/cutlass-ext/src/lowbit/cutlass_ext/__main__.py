"""python -m lowbit.cutlass_ext [--cmake-dir | --include-dir | --cutlass-include | --cutlass-version]"""

import sys

from lowbit import cutlass_ext as ce

_ANSWERS = {
    "--cmake-dir": lambda: str(ce.cmake_dir()),
    "--include-dir": lambda: str(ce.include_dir()),
    "--cutlass-include": lambda: ";".join(str(p) for p in ce.cutlass_include_dirs()),
    "--cutlass-version": lambda: str(ce.cutlass_version()),
}

if len(sys.argv) != 2 or sys.argv[1] not in _ANSWERS:
    print(__doc__.strip(), file=sys.stderr)
    sys.exit(2)
print(_ANSWERS[sys.argv[1]]())
