"""The paper's protocol and what is measured with it: k-shot folds (``protocol``),
studies over them (``ablations``), results tables (``results``, ``report``), the
committed reference (``reference``) and figures (``plots``). Import the module you
need: each pulls in torch only where it must."""
