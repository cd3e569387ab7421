#include <cblas.h>

// LAPACK's Cholesky factorisation and inverse (column-major, Fortran calling convention), which
// OpenBLAS exports; declared here because the LAPACK header's location differs across distributions.
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info);
