// Quantize module
