import sys

from tests.chart.check import main

sys.exit(main())
