"""Result kinds: what each experiment leaves in its output folder, registered once.

A kind names the file that marks its folders (`marker`, the metadata JSON written last), its
tables (name -> CSV file), the config sections its settings come from (written beside them in
config.yaml), its statistical tests (rows of tests.csv), its post-hoc comparison sets and the
figures the report draws of it. `cxrsal stats` and `cxrsal report` iterate over `RESULTS`: a new
experiment is one registered kind (`cxrsal.stats.study` registers score, randomization, compare
and the run cards).
"""

from ..registry import Registry

RESULTS = Registry("result kind")


class ResultKind:
    name = ""
    marker = ""            # the file that marks a folder of this kind
    tables = {}            # table name -> CSV file in the folder
    columns = {}           # table name -> the columns the tests read (a file without them is refused)
    command = ""           # the command that writes such a folder (named when a file of it is damaged)
    sections = ()          # config sections of its settings (the folder's config.yaml)
    figures = ()           # names of the report's figures drawn from it (cxrsal.report.FIGURES)
    order = 0              # position in discovery, tests and the report
    first_model_only = False   # a result of two models belongs to the first model's group only

    def group_of_rows(self, info, first):
        """A function of a loaded table giving each row's group (default: the folder's first group)."""
        return lambda frame: first

    def prepare(self, info, frame):
        """Columns a table gets from its folder's metadata before it is pooled with others."""
        return frame

    def tests(self, tables, alpha):
        """Rows of tests.csv from the pooled `tables` ({name: frame})."""
        return []

    def posthoc_sets(self, tables):
        """(ids, question, model, frame) sets of the post-hoc comparisons between methods."""
        return []

    def extra_files(self, folder):
        """Further files the report shows for provenance (e.g. a score's map store metadata)."""
        return []


def register_result(cls):
    RESULTS.register(cls.name)(cls())
    return cls


def kinds():
    """The registered kinds in order."""
    return sorted((RESULTS.get(n) for n in RESULTS.names()), key=lambda k: (k.order, k.name))


def table_names():
    return [t for k in kinds() for t in k.tables]
