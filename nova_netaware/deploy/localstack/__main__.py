import sys

from nova_netaware.deploy.localstack.cli import main

sys.exit(main())
