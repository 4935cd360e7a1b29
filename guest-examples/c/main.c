// A WASI command in C that uses a function from a sibling module, `testmod`
// (testmod.wat, beside this file): live-wasm links it on first call.
#include <stdio.h>

__attribute__((import_module("testmod"), import_name("function")))
int function(int x);

int main(void) {
    printf("Hello from C!\n");
    printf("testmod.function(20) = %d\n", function(20));
    return 0;
}
