# odqa — two commands: `make demo` and `make test`. The first run sets everything up.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ODQA := $(VENV)/bin/odqa
STAMP := $(VENV)/.installed
SAMPLE := examples/scifact-sample
DEMO_INDEX := build/demo-index
QA_SAMPLE := examples/squad-sample
QA_INDEX := build/demo-qa-index
DEMO_READER := build/demo-reader
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: setup demo browser test test-fast lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: the CPU wheel; an unpinned torch would pull gigabytes of CUDA
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP) $(DEMO_READER)/odqa_training.json
	$(ODQA) index $(SAMPLE)/corpus.jsonl $(DEMO_INDEX) --retrievers bm25,dense --overwrite
	$(ODQA) search $(DEMO_INDEX) "Bariatric surgery and mental health" -k 3
	$(ODQA) search $(DEMO_INDEX) "ADAR1 binds Dicer to cleave pre-miRNA" -k 3 --retriever bm25
	$(ODQA) eval $(DEMO_INDEX) --queries $(SAMPLE)/queries.jsonl --qrels $(SAMPLE)/qrels.tsv
	# answers: articles the reader never saw, indexed and asked
	$(ODQA) index $(QA_SAMPLE)/questions.json $(QA_INDEX) --retrievers bm25,dense --overwrite
	$(ODQA) ask $(QA_INDEX) "What is the name of the process which confirms the primality of a number n?" \
		--reader-model $(DEMO_READER)
	$(ODQA) ask $(QA_INDEX) "When were the shortcomings of Aristotle's physics overcome?" \
		--reader-model $(DEMO_READER)
	$(ODQA) eval-qa $(QA_INDEX) --questions $(QA_SAMPLE)/questions.json \
		--reader-model $(DEMO_READER) --top-k 1,3,5

# the demo's reader: the embedded MiniLM fine-tuned on four SQuAD articles (once; minutes)
$(DEMO_READER)/odqa_training.json: $(STAMP) $(QA_SAMPLE)/train.json
	$(ODQA) train reader $(QA_SAMPLE)/train.json --out $(DEMO_READER) --epochs 2 --overwrite

# the web page's test drives Debian's headless Chromium through chromedriver
browser:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ $(SUDO) apt-get update && \
		  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver; }

# everything, the browser test included (CI runs this)
test: $(STAMP) browser
	$(PY) -m pytest -q

# the inner loop: leaves out the slow and browser tests, installs no Chromium
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not browser"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) bench/retrieval_scifact.py
	$(PY) bench/squad_open_retrieval.py
	$(PY) bench/speed.py

clean:
	rm -rf build $(VENV)
