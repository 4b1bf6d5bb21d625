"""The paper's protocol and what is measured with it: k-shot folds (``protocol``),
studies over them (``ablations``), results tables (``results``, ``report``), the
committed reference (``reference``), the statistics every comparison reports
(``stats``: paired differences over independent units, Holm, verdicts), figures
(``plots``) and the line that says where a sweep of folds stands (``progress``).
Import the module you need: each pulls in torch only where it must."""
