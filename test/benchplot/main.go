package main

import _ "gonum.org/v1/plot"

func main() {}
