/* fuzz: what the fuzz targets share.  Each target is one libFuzzer entry
 * point (LLVMFuzzerTestOneInput, and LLVMFuzzerInitialize when it loads
 * configuration), built twice: with clang and libFuzzer for `make fuzz`, and
 * with the ordinary compiler and replay_main.c, which feeds it the seed
 * corpus under tests/fuzz/corpus/ in the unit tests.
 *
 * Targets run from the repository root (config/ is read from there).  A
 * broken invariant aborts through FUZZ_ASSERT, so libFuzzer saves the input
 * and the replay fails, sanitizers or not. */
#ifndef ANNOT_FUZZ_H
#define ANNOT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                                     \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: fuzz invariant broken: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

/* Dies naming what could not be loaded: a target without its configuration
 * tests nothing. */
#define FUZZ_DIE(...)                                  \
    do {                                               \
        fprintf(stderr, "fuzz: " __VA_ARGS__);         \
        fputc('\n', stderr);                           \
        exit(2);                                       \
    } while (0)

#endif
