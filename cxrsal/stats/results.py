"""Result kinds: what each experiment leaves in its output folder and how `cxrsal stats` and
`cxrsal report` read it, declared once per experiment.

A kind names the file that marks its folders (`marker`, the metadata JSON written last), its
tables (name -> CSV file), the config sections its settings come from, the questions it answers
(Table 2 columns) and the sanity checks it decides, its statistical tests (rows of tests.csv),
its post-hoc comparison sets, any table of its own, the figures the report draws of it and the
files the report shows for provenance. `cxrsal stats` and `cxrsal report` iterate over
`RESULTS`: a new experiment is its experiment module, one file under `cxrsal/stats/kinds/` and
its test (docs/guides/add-experiment.md).
"""

from dataclasses import dataclass

from ..registry import Registry

RESULTS = Registry("result kind")


@dataclass(frozen=True)
class Figure:
    """A figure of the report: `key` names its PNG, `caption` its heading; `sanity` figures are
    shown in the "Sanity checks" section, the others after the tests."""
    key: str
    caption: str
    png: bytes
    sanity: bool = False


@dataclass(frozen=True)
class Output:
    """A table of a kind's own beyond Table 2: written as `name`.csv by `cxrsal stats`, shown in
    tables.md and the report under `title`, with `note` below it."""
    name: str
    title: str
    frame: object
    note: str = ""


class ResultKind:
    name = ""
    marker = ""            # the file that marks a folder of this kind
    tables = {}            # table name -> CSV file in the folder
    columns = {}           # table name -> the columns the tests read (a file without them is refused)
    command = ""           # the command that writes such a folder (named when a file of it is damaged)
    sections = ()          # the config sections of its settings: the report shows these of its config.yaml
    questions = ()         # the Table 2 columns its tests answer, in the table's order
    sanity = {}            # sanity-table column -> what a PASS means, in the table's order
    sanity_names = {}      # a question of its tests -> its column in the sanity table
    absent = ""            # how to get results of this kind (said where a section lacks them)
    order = 0              # position in discovery, tests and the report
    first_model_only = False   # a result of two models belongs to the first model's group only

    def model_refs(self, meta):
        """The models (run folders or their names) a folder's marker names, in order."""
        return list(meta.get("models", []))

    def group_of_rows(self, info, first):
        """A function of a loaded table giving each row's group (default: the folder's first group)."""
        return lambda frame: first

    def prepare(self, info, frame):
        """Columns a table gets from its folder's metadata before it is pooled with others."""
        return frame

    def tests(self, tables, rules):
        """Rows of tests.csv from the pooled `tables` ({name: frame}), decided with `rules`
        (`cxrsal.stats.Rules`: alpha, min_images); a row with a `reason` is "undefined"."""
        return []

    def posthoc_sets(self, tables):
        """(ids, question, model, frame) sets of the post-hoc comparisons between methods."""
        return []

    def sanity_choices(self, info):
        """The choices of one of its folders behind the sanity table, in words ("" none)."""
        return ""

    def constant_maps(self, tables):
        """The maps behind its tests and how many were constant: a frame of dataset, group, method,
        maps, constant (None when its tables do not record it)."""
        return None

    def outputs(self, tables, res):
        """Tables of its own (`Output`), from the pooled tables and the results so far."""
        return []

    def figures(self, folders, res):
        """The report's figures (`Figure`) of its folders."""
        return []

    def provenance_files(self, folder):
        """The files the report shows for provenance: the folder's resolved config, its marker and
        what else records how the numbers were made."""
        return [folder / name for name in ("config.yaml", self.marker)]


def register_result(cls):
    RESULTS.register(cls.name)(cls())
    return cls


def kinds():
    """The registered kinds in order."""
    return sorted((RESULTS.get(n) for n in RESULTS.names()), key=lambda k: (k.order, k.name))


def table_names():
    return [t for k in kinds() for t in k.tables]
