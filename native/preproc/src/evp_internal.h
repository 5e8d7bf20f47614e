/* What preproc_host.cpp shares with preproc.cu (or with the host-only stubs): validation, the resize plans
 * and the thread's last error. */
#ifndef EVP_INTERNAL_H
#define EVP_INTERNAL_H

/* the library is built with hidden visibility: only the header's functions are exported */
#pragma GCC visibility push(default)
#include "edgevid_preproc.h"
#pragma GCC visibility pop

#include "evp_math.h"

namespace evp {

/* printf-style; the text is what evp_last_error() returns in this thread */
int fail(int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Argument checks shared by the CUDA and host entry points, so both builds refuse the same calls alike. */
int validate_crop(const evp_frame *frame, const evp_geometry *g, const void *crop);
int validate_tensor(const void *crop, int crop_size, int size, const float *mul, const float *add, int dtype,
                    const void *out, int64_t channel_stride);

/* The work of a validated evp_crop: the source frame, its resize, and where the crop starts. */
struct CropPlan {
  Source src;
  Resize resize;
  int top, left, crop;
};
CropPlan plan_crop(const evp_frame *frame, const evp_geometry *g);

/* The work of a validated evp_tensor. */
struct TensorPlan {
  Source src;
  Resize resize;
  Affine norm;
};
TensorPlan plan_tensor(const uint8_t *crop, int crop_size, int size, const float *mul, const float *add);

}  // namespace evp

#endif
