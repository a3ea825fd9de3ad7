import sys

from nova_netaware.deploy.cli import main

sys.exit(main())
