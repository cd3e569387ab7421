// Verify module
