// Calibrate module
