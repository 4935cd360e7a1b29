module example.com/hello-live

go 1.21
