"""The advisor's thresholds and knobs, declared once.

:class:`AdvisorParams` holds each knob with its default and description;
:func:`get_schema` gives the same declaration as a JSON schema, in the form
an OpenStack Watcher strategy returns from ``get_schema()``
(``{"properties": {name: {"description", "type", "default"}}}``), and
:func:`add_arguments` / :meth:`AdvisorParams.from_args` turn it into
command-line options (``--cpu-threshold`` ...) and back.

Each knob declares its valid range too, and that one declaration is checked
everywhere: by :class:`AdvisorParams` itself (so a caller such as a Watcher
strategy gets the same :class:`ValueError`), by the command-line options
(an argparse error naming the option) and in the schema (``minimum`` ...).

:class:`ExecutionParams` declares how a plan is carried out (cold or live,
with or without a named destination); the plan does not depend on it.
``get_schema(execution=True)`` adds it (the Watcher strategy's parameters)
and :func:`split` turns audit parameters back into both.
"""

import argparse
import dataclasses

_JSON_TYPES = {float: 'number', int: 'integer'}

#: valid ranges: (lowest, lowest excluded?, highest or None)
FRACTION = (0.0, True, 1.0)             # (0, 1]
SHARE = (0.0, False, 1.0)               # [0, 1]
COUNT = (0, False, None)                # integer >= 0


def _knob(default, description, metavar, valid, note=''):
    return dataclasses.field(default=default, metadata={
        'description': description, 'metavar': metavar, 'note': note,
        'valid': valid})


def _range_text(f):
    low, open_low, high = f.metadata['valid']
    if high is None:
        return '%s %s' % ('>' if open_low else '>=', low)
    return 'in %s%g, %g]' % ('(' if open_low else '[', low, high)


def check(f, value):
    """*value* if it is valid for the knob *f* (a dataclass field), else
    :class:`ValueError` saying what the knob accepts."""
    low, open_low, high = f.metadata['valid']
    integer = isinstance(f.default, int)
    ok = (not isinstance(value, bool) and
          isinstance(value, int if integer else (int, float)) and
          (value > low if open_low else value >= low) and
          (high is None or value <= high))
    if not ok:
        raise ValueError('%s must be %s %s, got %r' % (
            f.name, 'an integer' if integer else 'a number', _range_text(f),
            value))
    return value


@dataclasses.dataclass(frozen=True)
class AdvisorParams:
    """Thresholds and knobs of the rebalance advisor."""
    cpu_threshold: float = _knob(
        0.9, 'A host is overloaded above this fraction of its allocatable '
        'vCPUs', '<fraction>', FRACTION)
    ram_threshold: float = _knob(
        0.9, 'A host is overloaded above this fraction of its allocatable '
        'RAM', '<fraction>', FRACTION)
    link_threshold: float = _knob(
        0.8, 'A link is congested above this utilisation', '<fraction>',
        FRACTION)
    max_migrations: int = _knob(
        5, 'Plan at most N migrations', '<N>', COUNT,
        note='0 plans none')
    min_gain: float = _knob(
        0.1, 'A move that relieves no hot spot is planned only if it lowers '
        'the network cost by at least this fraction of the server\'s own '
        'traffic cost', '<fraction>', SHARE,
        note='0 plans every improvement')

    def __post_init__(self):
        for f in dataclasses.fields(self):
            check(f, getattr(self, f.name))

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


def _schema(f):
    """One knob in JSON schema draft 4, the draft Watcher validates audit
    parameters with (``StrictDefaultValidatingDraft4Validator``): an open
    lower bound is ``minimum`` with ``exclusiveMinimum: true``."""
    low, open_low, high = f.metadata['valid']
    out = {'description': _described(f) + '.',
           'type': _JSON_TYPES[type(f.default)], 'default': f.default,
           'minimum': low}
    if open_low:
        out['exclusiveMinimum'] = True
    if high is not None:
        out['maximum'] = high
    return out


#: Nova's two kinds of move, as Watcher's ``migrate`` action names them.
MIGRATION_TYPES = ('cold', 'live')


@dataclasses.dataclass(frozen=True)
class ExecutionParams:
    """How a plan's moves are carried out (they do not change the plan).

    ``migration_type`` defaults to cold, as ``openstack netaware rebalance``
    does without ``--live``; ``explicit_destination`` false lets Nova's
    scheduler (with the nova-netaware filter and weigher) choose each
    destination, as the command always does.
    """
    migration_type: str = dataclasses.field(default='cold', metadata={
        'description': 'How each server is moved: cold (migrate, then '
        'confirm) or live', 'schema': {'type': 'string',
                                       'enum': list(MIGRATION_TYPES)}})
    explicit_destination: bool = dataclasses.field(
        default=False, metadata={
            'description': 'Name the predicted host as each move\'s '
            'destination (false: no destination, Nova\'s scheduler with the '
            'nova-netaware filter and weigher chooses)',
            'schema': {'type': 'boolean'}})

    def __post_init__(self):
        if self.migration_type not in MIGRATION_TYPES:
            raise ValueError('migration_type must be one of %s, got %r' % (
                ', '.join(MIGRATION_TYPES), self.migration_type))
        if not isinstance(self.explicit_destination, bool):
            raise ValueError('explicit_destination must be true or false, '
                             'got %r' % (self.explicit_destination,))

    @property
    def live(self):
        return self.migration_type == 'live'


def get_schema(execution=False):
    """The knobs as a JSON schema (draft 4, a Watcher strategy's
    ``get_schema()``), with their valid ranges; with *execution*, the
    :class:`ExecutionParams` too."""
    props = {f.name: _schema(f) for f in dataclasses.fields(AdvisorParams)}
    if execution:
        for f in dataclasses.fields(ExecutionParams):
            props[f.name] = dict(f.metadata['schema'],
                                 description=f.metadata['description'] + '.',
                                 default=f.default)
    return {'properties': props}


def split(parameters):
    """``(AdvisorParams, ExecutionParams)`` from a mapping such as Watcher's
    audit parameters (missing names take their defaults; an unknown name
    raises :class:`TypeError`, a bad value :class:`ValueError`)."""
    names = {f.name for f in dataclasses.fields(AdvisorParams)}
    given = dict(parameters)
    knobs = AdvisorParams(**{k: v for k, v in given.items() if k in names})
    return knobs, ExecutionParams(**{k: v for k, v in given.items()
                                     if k not in names})


def _option_type(f):
    """The argparse ``type`` of knob *f*: parse, then :func:`check`."""
    def parse(text):
        try:
            value = type(f.default)(text)
        except ValueError:
            value = text
        try:
            return check(f, value)
        except ValueError:
            raise argparse.ArgumentTypeError('must be %s %s, got %r' % (
                'an integer' if isinstance(f.default, int) else 'a number',
                _range_text(f), text))
    parse.__name__ = f.name
    return parse


def add_arguments(parser):
    """Add ``--cpu-threshold`` ... ``--min-gain`` to an argparse parser."""
    for f in dataclasses.fields(AdvisorParams):
        note = f.metadata['note']
        parser.add_argument(
            '--' + f.name.replace('_', '-'), type=_option_type(f),
            default=f.default, metavar=f.metadata['metavar'],
            help='%s (default %s%s).' % (f.metadata['description'],
                                          f.default,
                                          '; ' + note if note else ''))
    return parser
