# Thin wrappers: dev.py does the work, so the same commands run where make is missing.
PYTHON ?= python3

.PHONY: run demo test lint bench
run demo:
	$(PYTHON) dev.py run
test:
	$(PYTHON) dev.py test
lint:
	$(PYTHON) dev.py lint
bench:
	$(PYTHON) dev.py bench
