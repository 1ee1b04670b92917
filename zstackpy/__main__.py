import sys

from zstackpy.node.cli import main

sys.exit(main())
