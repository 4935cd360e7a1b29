// A module main.js imports: save it and main.js runs again.
export function greet(name) {
  return `Hello from ${name}!`;
}

export function fib(n) {
  let [a, b] = [0, 1];
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a;
}
