import sys

from facetwin.app.cli import main

sys.exit(main())
