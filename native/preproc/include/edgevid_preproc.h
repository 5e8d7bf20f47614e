/* edgevid_preproc: a decoded camera frame -> the input tensors of a bundle's engines, on the GPU.
 *
 * The arithmetic is the CPU path's (edgevid/preprocess.py, OpenCV), so an engine sees on the device what the
 * model saw in training:
 *   1. geometry: scale = resize_short / min(h, w) (double); nh = max(crop, round_half_even(h * scale)),
 *      nw = max(crop, round_half_even(w * scale)); top = (nh - crop) / 2, left = (nw - crop) / 2 (floor).
 *   2. evp_crop: the crop x crop x 3 uint8 pixels at (top, left) of the frame resized to nh x nw: OpenCV's
 *      INTER_AREA when scale < 1, INTER_LINEAR when scale > 1, a plain copy when (nh, nw) == (h, w); the result
 *      rounded to uint8 as cv2.resize rounds; channels in the spec's order (to_rgb swaps BGR -> RGB). Only the
 *      crop is computed: a pixel of the resized image does not depend on the others.
 *   3. evp_tensor: the crop resized to size x size (INTER_AREA when size < crop, INTER_LINEAR when size > crop,
 *      none when equal; rounded to uint8), then out[c] = pixel[c] * mul[c] + add[c] (float32 or float16, CHW).
 *      mul = scale / std and add = -mean / std per channel, as edgevid.preprocess.Preprocessor folds them.
 * NV12 (the Jetson decoders' and CSI cameras' format) is converted per pixel as OpenCV's COLOR_YUV2BGR_NV12
 * (BT.601 limited range, 20-bit fixed point), then treated as BGR.
 *
 * Every function works on caller-provided memory and, for the CUDA ones, a caller-provided stream
 * (a cudaStream_t passed as void*; NULL is the legacy default stream); nothing synchronises. Device
 * functions need device pointers of the current CUDA context. The evp_host_* functions are the same
 * arithmetic on host memory, compiled without CUDA, for tests and as the reference.
 *
 * Plain C ABI: loaded with ctypes (edgevid/native.py). Return value: an evp_status.
 */
#ifndef EDGEVID_PREPROC_H
#define EDGEVID_PREPROC_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EVP_ABI_VERSION 1

typedef enum {
  EVP_OK = 0,
  EVP_ERR_ARGUMENT = 1,            /* a NULL pointer, an unknown format or dtype, a size below 1 */
  EVP_ERR_FRAME = 2,               /* frame too small (< 16 px a side), pitch below the row width, odd NV12 size */
  EVP_ERR_CUDA = 3,                /* a CUDA call failed: evp_last_error() says which and why */
  EVP_ERR_NO_KERNEL_FOR_DEVICE = 4,/* the library has no kernels for this GPU's SM: rebuild for it */
  EVP_ERR_CONTEXT = 5              /* a pointer or stream that is not of the current CUDA context */
} evp_status;

typedef enum { EVP_BGR8 = 0, EVP_RGB8 = 1, EVP_NV12 = 2 } evp_format;
typedef enum { EVP_FLOAT32 = 0, EVP_FLOAT16 = 1 } evp_dtype;

typedef struct {
  int format;            /* evp_format */
  int width, height;     /* pixels; NV12: both even */
  const uint8_t *data;   /* BGR8/RGB8: packed HWC rows; NV12: the Y plane */
  int pitch;             /* bytes from one row to the next (>= 3 * width, NV12: >= width) */
  const uint8_t *uv;     /* NV12 only: the interleaved U,V plane, height / 2 rows */
  int uv_pitch;          /* NV12 only: bytes per UV row (>= width) */
} evp_frame;

typedef struct {
  int resize_short;      /* the short side is resized to this */
  int crop;              /* then the centre crop x crop */
  int to_rgb;            /* 1: the crop is RGB (spec color "RGB"); 0: BGR */
} evp_geometry;

/* library facts */
int evp_abi_version(void);
const char *evp_status_string(int status);
const char *evp_last_error(void);          /* the last failure's details in this thread ("" when none) */
const char *evp_built_archs(void);         /* the SMs compiled in, e.g. "72;87" ("host" for the host-only build) */

/* geometry of step 1 (host only, also in the host-only build) */
int evp_geometry_of(int width, int height, const evp_geometry *g, int *resized_w, int *resized_h, int *top,
                    int *left);

/* CUDA: checks a kernel image exists for the current device; *sm = its compute capability, e.g. 72 */
int evp_check_device(int *sm);
/* CUDA: step 2 into crop (device, crop * crop * 3 bytes, HWC) */
int evp_crop(const evp_frame *frame, const evp_geometry *g, uint8_t *crop, void *stream);
/* CUDA: step 3 from crop (device) into out (device): out + c * channel_stride + y * size + x, in elements;
 * channel_stride = size * size for a [1, 3, size, size] input; a SlowFast clip [1, 3, T, S, S] takes frame t at
 * out + t * S * S with channel_stride = T * S * S. */
int evp_tensor(const uint8_t *crop, int crop_size, int size, const float mul[3], const float add[3], int dtype,
               void *out, int64_t channel_stride, void *stream);

/* host reference: the same arithmetic on host memory */
int evp_host_crop(const evp_frame *frame, const evp_geometry *g, uint8_t *crop);
int evp_host_tensor(const uint8_t *crop, int crop_size, int size, const float mul[3], const float add[3],
                    int dtype, void *out, int64_t channel_stride);

#ifdef __cplusplus
}
#endif
#endif
