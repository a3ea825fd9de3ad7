"""The OSC plugin's "no topology" error names every way to give one."""

import pytest

from nova_netaware.core.exceptions import DataError
from nova_netaware.osc import data


def test_no_topology_names_the_config_variable(tmp_path, monkeypatch):
    conf = tmp_path / 'nova.conf'
    conf.write_text('[netaware]\n')
    monkeypatch.delenv(data.CONFIG_ENV, raising=False)
    c = data.load_conf([str(conf)])
    with pytest.raises(DataError) as exc:
        data.load_engine(c)
    msg = str(exc.value)
    assert msg.startswith('no topology: set [netaware] topology_file')
    for hint in ('--config-file', '$NETAWARE_CONFIG_FILE',
                 '/etc/nova/nova.conf', '--topology'):
        assert hint in msg
