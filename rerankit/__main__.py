"""``python -m rerankit``: the ``rerankit`` command."""

from rerankit.cli import main

raise SystemExit(main())
