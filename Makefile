# The two commands of the README, plus a few helpers.
#   make demo   installs what is missing, builds, runs the main job
#   make test   installs what is missing, builds, runs every test (ctest)
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build demo test bench sanitize chaos clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	scripts/demo $(BUILD)/apps/samverka

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: deps
	cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DSAMVERKA_BUILD_BENCHMARKS=ON -DSAMVERKA_BUILD_TESTS=OFF
	cmake --build build-bench -j $(JOBS)

# Kill -9 chaos at length: make chaos CYCLES=1000 [SEED=N]
CYCLES ?= 100
chaos: build
	cd $(BUILD) && SAMVERKA_CHAOS_CYCLES=$(CYCLES) $(if $(SEED),SAMVERKA_CHAOS_SEED=$(SEED)) \
	  tests/integration/integration_test --gtest_filter='ChaosTest.*'

sanitize: deps
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
	  -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer"
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD) build-bench build-asan
