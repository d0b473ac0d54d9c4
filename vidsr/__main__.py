import sys

from vidsr.cli import main

sys.exit(main())
