"""``returnhook demo``: an embedded broker, a demo receiver, a worker subprocess and six
realistic events, then tables of what came out. A leaf: only the CLI imports it.
"""
