print("nemo-convert")
