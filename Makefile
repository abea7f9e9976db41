# The two entry points: `make quickstart` and `make test`.
.PHONY: quickstart test build docs format clean

quickstart:
	@scripts/setup build
	@cmake --preset release >/dev/null
	@cmake --build --preset release --target dbops
	@scripts/quickstart build/release/src/dbops

test:
	@scripts/setup test
	cmake --preset fuzz >/dev/null
	cmake --build --preset fuzz
	cmake --preset dev >/dev/null
	cmake --build --preset dev
	ctest --preset dev -j2

build:
	@scripts/setup build
	@cmake --preset dev >/dev/null
	cmake --build --preset dev

# Regenerates the generated blocks of docs/ from the declarations in src/.
docs: build
	build/dev/src/dbops docs update --dir docs

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf build
