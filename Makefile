# make demo  -- set up (.venv + installs) and run the main job
# make test  -- set up and run the test suite
PY        ?= python3
VENV      ?= .venv
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed
DATA      ?= data
SHARED    ?= ../shared/data

.PHONY: demo test install lint clean data

install: $(STAMP)

$(STAMP): setup.py requirements/constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements/constraints.txt -e '.[train,onnx,cv,dev]'
	$(BIN)/python -m pip install -q --no-deps 'tensorrt-stubs==10.13.0.35.1'
	touch $(STAMP)

# CIFAR-10 in the official layout under $(DATA): unpacked from $(SHARED) when it is there.
data:
	@if [ -f $(DATA)/cifar-10-batches-py/test_batch ]; then :; \
	elif [ -x $(SHARED)/unpack-cifar ]; then $(SHARED)/unpack-cifar $(DATA); \
	else echo "no CIFAR-10 in $(DATA) and no $(SHARED)/unpack-cifar: the real-data tests skip"; fi

test: $(STAMP)
	$(BIN)/python -m pytest -q

# the main job: `edge-runtime run` headless on the bundled clip with the bundled model (no GPU, camera or data needed)
demo: $(STAMP)
	@bash deploy/demo.sh "$(BIN)"

lint: $(STAMP)
	$(BIN)/vermin -q --no-tips --violations -t=3.8- edge_runtime

clean:
	rm -rf runs/demo runs/vehicle runs/bench .pytest_cache .mypy_cache
