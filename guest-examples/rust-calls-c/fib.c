// The module src/main.rs uses, in C without libc: it exports `fib` and
// nothing else. Edit it, save, and the Rust program re-runs with it.

__attribute__((export_name("fib")))
int fib(int n) {
    int a = 0, b = 1;
    for (int i = 0; i < n; i++) {
        int next = a + b;
        a = b;
        b = next;
    }
    return a;
}
