/*
 * fuzz_liquid.c: libFuzzer target for parse + render (see fuzz.sh).
 * Build: clang -fsanitize=fuzzer,address -Icore/liquid ... (fuzz.sh does it).
 */
#include "fuzz_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return liquid_fuzz_one(data, size);
}
