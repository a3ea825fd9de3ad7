"""Run the ``network_aware_rebalance`` strategy as Watcher's decision engine
does, in its own process, against the local stack; print the solution as
JSON on stdout.

``python -m tests.e2e.watcher_strategy_run <clouds.yaml> <cloud>
<netaware.conf section as JSON> <audit parameters as JSON> <state dir>``

Watcher's configuration is a watcher.conf written here: the stack's admin
credentials in ``[watcher_clients_auth]`` (the strategy's Nova and Placement
session, as in a real decision engine) and the ``[netaware]`` section (the
strategy's default: the decision engine's own config files). The strategy
is loaded by Watcher's loader (entry points) and executed as the audit
handler executes it. A process of its own: Nova and Watcher cannot be
imported into one process (DuplicateOptError on ``host``).
"""

import json
import os
import sys

import yaml


def main(clouds_yaml, cloud, netaware, parameters, state_dir):
    auth = yaml.safe_load(open(clouds_yaml))['clouds'][cloud]['auth']
    conf = os.path.join(state_dir, 'watcher-strategy-test.conf')
    lines = ['[watcher_clients_auth]', 'auth_type = password']
    lines += ['%s = %s' % kv for kv in sorted(auth.items())]
    lines += ['', '[netaware]']
    lines += ['%s = %s' % kv for kv in sorted(json.loads(netaware).items())]
    with open(conf, 'w') as f:
        f.write('\n'.join(lines) + '\n')

    from oslo_config import cfg
    from watcher.common import utils
    from watcher.decision_engine.loading import default as loading
    cfg.CONF(['--config-file', conf], project='watcher')
    strategy = loading.DefaultStrategyLoader().load('network_aware_rebalance')
    params = json.loads(parameters)
    utils.StrictDefaultValidatingDraft4Validator(
        strategy.get_schema()).validate(params)
    strategy.input_parameters.update(params)
    try:
        solution = strategy.execute()
    except Exception as e:
        print(json.dumps({'error': '%s: %s' % (type(e).__name__, e)}))
        return 1
    print(json.dumps({
        'actions': solution.actions,
        'indicators': {i.name: i.value for i in solution.efficacy_indicators},
        'global': {i.name: i.value for i in solution.global_efficacy},
    }))
    return 0


if __name__ == '__main__':
    sys.exit(main(*sys.argv[1:]))
