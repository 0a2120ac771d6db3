from devloop.cli import entry

if __name__ == "__main__":  # the syntax check's worker process imports this module too
    entry()
