"""A module main.py imports: save it and main.py runs again."""


def greet(name):
    return f"Hello from {name}!"


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
