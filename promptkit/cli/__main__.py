import sys

from promptkit.cli import main

sys.exit(main())
