"""The advisor's thresholds and knobs, declared once.

:class:`AdvisorParams` holds each knob with its default and description;
:func:`get_schema` gives the same declaration as a JSON schema, in the form
an OpenStack Watcher strategy returns from ``get_schema()``
(``{"properties": {name: {"description", "type", "default"}}}``), and
:func:`add_arguments` / :meth:`AdvisorParams.from_args` turn it into
command-line options (``--cpu-threshold`` ...) and back.
"""

import dataclasses

_JSON_TYPES = {float: 'number', int: 'integer'}


def _knob(default, description, metavar, note=''):
    return dataclasses.field(default=default, metadata={
        'description': description, 'metavar': metavar, 'note': note})


@dataclasses.dataclass(frozen=True)
class AdvisorParams:
    """Thresholds and knobs of the rebalance advisor."""
    cpu_threshold: float = _knob(
        0.9, 'A host is overloaded above this fraction of its allocatable '
        'vCPUs', '<fraction>')
    ram_threshold: float = _knob(
        0.9, 'A host is overloaded above this fraction of its allocatable '
        'RAM', '<fraction>')
    link_threshold: float = _knob(
        0.8, 'A link is congested above this utilisation', '<fraction>')
    max_migrations: int = _knob(
        5, 'Plan at most N migrations', '<N>')
    min_gain: float = _knob(
        0.1, 'A move that relieves no hot spot is planned only if it lowers '
        'the network cost by at least this fraction of the server\'s own '
        'traffic cost', '<fraction>', note='0 plans every improvement')

    @classmethod
    def from_args(cls, parsed_args):
        """From the options :func:`add_arguments` declared."""
        return cls(**{f.name: getattr(parsed_args, f.name)
                      for f in dataclasses.fields(cls)})


def resolve(knobs=None, **overrides):
    """*knobs* (default :class:`AdvisorParams`) with *overrides* applied;
    an unknown name raises :class:`TypeError`."""
    knobs = knobs if knobs is not None else AdvisorParams()
    return dataclasses.replace(knobs, **overrides) if overrides else knobs


def _described(f):
    note = f.metadata['note']
    return f.metadata['description'] + (' (%s)' % note if note else '')


def get_schema():
    """The knobs as a JSON schema (Watcher strategy ``get_schema()``)."""
    return {'properties': {
        f.name: {'description': _described(f) + '.',
                 'type': _JSON_TYPES[type(f.default)],
                 'default': f.default}
        for f in dataclasses.fields(AdvisorParams)}}


def add_arguments(parser):
    """Add ``--cpu-threshold`` ... ``--min-gain`` to an argparse parser."""
    for f in dataclasses.fields(AdvisorParams):
        note = f.metadata['note']
        parser.add_argument(
            '--' + f.name.replace('_', '-'), type=type(f.default),
            default=f.default, metavar=f.metadata['metavar'],
            help='%s (default %s%s).' % (f.metadata['description'],
                                          f.default,
                                          '; ' + note if note else ''))
    return parser
