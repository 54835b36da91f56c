"""engine/: what every Temporal-facing room shares (gateway, worker, workflows, activities).

The connection to the workflow engine (client, data converter, search-attribute
registration), the dev server command line, the names of workflows and activities, the
search attributes, and the codec that carries failures across Temporal. The gateway
imports this room, never ``worker/`` or ``workflows/``; ``shared/`` never imports it (no
temporalio there), and it imports nothing but ``shared/``.
"""
