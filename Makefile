# odqa — two commands: `make demo` and `make test`. The first run sets everything up.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ODQA := $(VENV)/bin/odqa
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
SAMPLE := examples/scifact-sample
DEMO_INDEX := build/demo-index
QA_SAMPLE := examples/squad-sample
QA_INDEX := build/demo-qa-index
DEMO_READER := build/demo-reader
DEMO_QUERY := Bariatric surgery and mental health
QA_QUESTION := What is the name of the process which confirms the primality of a number n?
QA_LIMIT := 100
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: setup demo demo-search demo-answers browser test test-fast lint docs bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: the CPU wheel; an unpinned torch would pull gigabytes of CUDA
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e .
	touch $(STAMP)

# the tests' own tools and every optional extra (the demo needs none of them)
$(DEV_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(DEV_STAMP)

setup: $(DEV_STAMP)

# search first (the four retrievers on the SciFact sample), then answers; a second run reuses
# the indexes and the reader (it is retrained only when the sample or its settings change)
demo: demo-search demo-answers

demo-search: $(STAMP) $(DEMO_INDEX)/manifest.json
	$(ODQA) search $(DEMO_INDEX) "$(DEMO_QUERY)" -k 3 --retriever bm25
	$(ODQA) search $(DEMO_INDEX) "$(DEMO_QUERY)" -k 3 --retriever dense
	$(ODQA) search $(DEMO_INDEX) "$(DEMO_QUERY)" -k 3 --retriever hybrid
	$(ODQA) search $(DEMO_INDEX) "$(DEMO_QUERY)" -k 3 --retriever colbert
	$(ODQA) eval $(DEMO_INDEX) --queries $(SAMPLE)/queries.jsonl --qrels $(SAMPLE)/qrels.tsv

# answers: articles the reader never saw, indexed and asked; first without a trained reader
# (the best sentence), then with the demo's reader; eval-qa on the first 100 questions
demo-answers: $(STAMP) $(QA_INDEX)/manifest.json $(DEMO_READER)/odqa_training.json
	$(ODQA) ask $(QA_INDEX) "$(QA_QUESTION)"
	$(ODQA) ask $(QA_INDEX) "$(QA_QUESTION)" --reader-model $(DEMO_READER)
	$(ODQA) ask $(QA_INDEX) "When were the shortcomings of Aristotle's physics overcome?" \
		--reader-model $(DEMO_READER)
	$(ODQA) eval-qa $(QA_INDEX) --questions $(QA_SAMPLE)/questions.json \
		--reader-model $(DEMO_READER) --top-k 1,3 --limit $(QA_LIMIT)

$(DEMO_INDEX)/manifest.json: $(STAMP) $(SAMPLE)/corpus.jsonl
	$(ODQA) index $(SAMPLE)/corpus.jsonl $(DEMO_INDEX) --retrievers bm25,dense,colbert --overwrite

$(QA_INDEX)/manifest.json: $(STAMP) $(QA_SAMPLE)/questions.json
	$(ODQA) index $(QA_SAMPLE)/questions.json $(QA_INDEX) --retrievers bm25,dense --overwrite

# the demo's reader: the embedded MiniLM fine-tuned on four SQuAD articles (2,047 questions)
# with odqa train reader's defaults, one epoch of 259 steps of 8 windows, about 3 minutes on
# 2 cores, once: --reuse keeps it while the sample's sha256 and the settings stay the same
$(DEMO_READER)/odqa_training.json: $(STAMP) $(QA_SAMPLE)/train.json
	$(ODQA) train reader $(QA_SAMPLE)/train.json --out $(DEMO_READER) --reuse --overwrite

# the web page's test drives Debian's headless Chromium through chromedriver
browser:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ $(SUDO) apt-get update && \
		  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver; }

# everything, the browser test included (CI runs this)
test: $(DEV_STAMP) browser
	$(PY) -m pytest -q

# the inner loop: leaves out the slow and browser tests, installs no Chromium
test-fast: $(DEV_STAMP)
	$(PY) -m pytest -q -m "not slow and not browser"

# the documentation site into site/, offline; a warning (broken link or anchor) fails it
docs: $(DEV_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict
	@echo "open site/index.html"

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(DEV_STAMP)
	$(PY) bench/retrieval_scifact.py
	$(PY) bench/squad_open_retrieval.py
	$(PY) bench/speed.py

clean:
	rm -rf build site $(VENV)
