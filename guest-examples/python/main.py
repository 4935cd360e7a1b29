import helper

print(helper.greet("Python"))
print("fib(30) =", helper.fib(30))
