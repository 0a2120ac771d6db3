from devloop.cli import entry

entry()
