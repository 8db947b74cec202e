"""Every ``returnhook`` command (typer). The top layer: nothing imports it.

May import everything below it, and ``streams.demo`` (only to run ``returnhook demo``).
"""
