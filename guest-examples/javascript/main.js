import { greet, fib } from "./helper.js";

console.log(greet("JavaScript"));
console.log("fib(30) =", fib(30));
