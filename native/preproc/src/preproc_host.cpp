/* The parts of libedgevid_preproc that need no GPU: library facts, errors, validation, geometry, and the
 * evp_host_* reference (the kernels' per-pixel functions run in plain loops). Built into both variants. */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "evp_internal.h"

namespace evp {

namespace {

thread_local char last_error[512];

/* a resized side beyond this is a caller's mistake (a typo'd resize_short), not a frame */
const int kMaxSide = 1 << 16;

int check_geometry(const evp_geometry *g) {
  if (!g) return fail(EVP_ERR_ARGUMENT, "the geometry is NULL");
  if (g->resize_short < 1 || g->crop < 1)
    return fail(EVP_ERR_ARGUMENT, "geometry resize_short %d, crop %d: both must be at least 1", g->resize_short,
                g->crop);
  if (g->resize_short > kMaxSide || g->crop > kMaxSide)
    return fail(EVP_ERR_ARGUMENT, "geometry resize_short %d, crop %d: at most %d", g->resize_short, g->crop,
                kMaxSide);
  return EVP_OK;
}

int check_frame_size(int width, int height) {
  if (width < 16 || height < 16)
    return fail(EVP_ERR_FRAME, "the frame is %dx%d pixels: at least 16x16 is needed to crop from", width, height);
  return EVP_OK;
}

int check_frame(const evp_frame *f) {
  if (!f) return fail(EVP_ERR_ARGUMENT, "the frame is NULL");
  if (f->format != EVP_BGR8 && f->format != EVP_RGB8 && f->format != EVP_NV12)
    return fail(EVP_ERR_ARGUMENT, "unknown frame format %d (0 BGR8, 1 RGB8, 2 NV12)", f->format);
  if (!f->data) return fail(EVP_ERR_ARGUMENT, "the frame's data is NULL");
  if (f->format == EVP_NV12 && !f->uv) return fail(EVP_ERR_ARGUMENT, "the NV12 frame's uv plane is NULL");
  const int status = check_frame_size(f->width, f->height);
  if (status != EVP_OK) return status;
  const int64_t row = f->format == EVP_NV12 ? (int64_t)f->width : 3 * (int64_t)f->width;
  if (f->pitch < row)
    return fail(EVP_ERR_FRAME, "the frame's pitch %d is below its row of %lld bytes", f->pitch, (long long)row);
  if (f->format != EVP_NV12) return EVP_OK;
  if (f->width % 2 || f->height % 2)
    return fail(EVP_ERR_FRAME, "an NV12 frame of %dx%d: NV12 needs an even width and height", f->width, f->height);
  if (f->uv_pitch < f->width)
    return fail(EVP_ERR_FRAME, "the NV12 uv pitch %d is below the width %d", f->uv_pitch, f->width);
  return EVP_OK;
}

/* cv::resize's choice of method, with its own scale arithmetic (dsize / ssize, then 1 / that) */
Resize plan_resize(int sw, int sh, int dw, int dh, int area) {
  Resize r;
  r.sw = sw;
  r.sh = sh;
  r.dw = dw;
  r.dh = dh;
  r.inv_x = (double)dw / sw;
  r.inv_y = (double)dh / sh;
  r.scale_x = 1.0 / r.inv_x;
  r.scale_y = 1.0 / r.inv_y;
  r.fast_x = (int)nearbyint(r.scale_x);
  r.fast_y = (int)nearbyint(r.scale_y);
  if (sw == dw && sh == dh) {
    r.kind = RESIZE_COPY;
  } else if (area && r.scale_x >= 1 && r.scale_y >= 1) {
    const bool whole = fabs(r.scale_x - r.fast_x) < DBL_EPSILON && fabs(r.scale_y - r.fast_y) < DBL_EPSILON;
    r.kind = whole ? RESIZE_AREA_FAST : RESIZE_AREA;
  } else {
    r.kind = area ? RESIZE_LINEAR_AREA : RESIZE_LINEAR;
  }
  return r;
}

Source crop_source(const uint8_t *crop, int crop_size) {
  Source s;
  s.format = EVP_BGR8;
  s.width = s.height = crop_size;
  s.data = crop;
  s.pitch = 3 * crop_size;
  s.uv = nullptr;
  s.uv_pitch = 0;
  s.swap = 0;
  return s;
}

}  // namespace

int fail(int status, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, args);
  va_end(args);
  return status;
}


int validate_crop(const evp_frame *frame, const evp_geometry *g, const void *crop) {
  int status = check_frame(frame);
  if (status == EVP_OK) status = check_geometry(g);
  if (status == EVP_OK && !crop) status = fail(EVP_ERR_ARGUMENT, "the crop buffer is NULL");
  return status;
}

int validate_tensor(const void *crop, int crop_size, int size, const float *mul, const float *add, int dtype,
                    const void *out, int64_t channel_stride) {
  if (!crop || !mul || !add || !out)
    return fail(EVP_ERR_ARGUMENT, "NULL argument: crop %p, mul %p, add %p, out %p", crop, (const void *)mul,
                (const void *)add, out);
  if (dtype != EVP_FLOAT32 && dtype != EVP_FLOAT16)
    return fail(EVP_ERR_ARGUMENT, "unknown dtype %d (0 float32, 1 float16)", dtype);
  if (crop_size < 1 || size < 1 || crop_size > kMaxSide || size > kMaxSide)
    return fail(EVP_ERR_ARGUMENT, "crop_size %d, size %d: each must be 1..%d", crop_size, size, kMaxSide);
  if (channel_stride < (int64_t)size * size)
    return fail(EVP_ERR_ARGUMENT, "channel_stride %lld is below size * size = %lld: the channels would overlap",
                (long long)channel_stride, (long long)size * size);
  return EVP_OK;
}

CropPlan plan_crop(const evp_frame *f, const evp_geometry *g) {
  CropPlan p;
  int rw, rh;
  evp_geometry_of(f->width, f->height, g, &rw, &rh, &p.top, &p.left);
  p.crop = g->crop;
  const double scale = g->resize_short / (double)(f->width < f->height ? f->width : f->height);
  p.resize = plan_resize(f->width, f->height, rw, rh, scale < 1);
  p.src.format = f->format;
  p.src.width = f->width;
  p.src.height = f->height;
  p.src.data = f->data;
  p.src.pitch = f->pitch;
  p.src.uv = f->uv;
  p.src.uv_pitch = f->uv_pitch;
  const int source_rgb = f->format == EVP_RGB8;
  p.src.swap = source_rgb != (g->to_rgb != 0);
  return p;
}

TensorPlan plan_tensor(const uint8_t *crop, int crop_size, int size, const float *mul, const float *add) {
  TensorPlan p;
  p.src = crop_source(crop, crop_size);
  p.resize = plan_resize(crop_size, crop_size, size, size, size < crop_size);
  for (int c = 0; c < 3; ++c) {
    p.norm.mul[c] = mul[c];
    p.norm.add[c] = add[c];
  }
  return p;
}

}  // namespace evp

extern "C" {

int evp_abi_version(void) { return EVP_ABI_VERSION; }

const char *evp_status_string(int status) {
  switch (status) {
    case EVP_OK: return "EVP_OK: success";
    case EVP_ERR_ARGUMENT: return "EVP_ERR_ARGUMENT: a NULL pointer, an unknown format or dtype, or a size below 1";
    case EVP_ERR_FRAME: return "EVP_ERR_FRAME: the frame is too small, its pitch too short, or NV12 of odd size";
    case EVP_ERR_CUDA: return "EVP_ERR_CUDA: a CUDA call failed (evp_last_error says which)";
    case EVP_ERR_NO_KERNEL_FOR_DEVICE:
      return "EVP_ERR_NO_KERNEL_FOR_DEVICE: the library has no kernels for this GPU's SM (rebuild it for that SM)";
    case EVP_ERR_CONTEXT: return "EVP_ERR_CONTEXT: a pointer or stream that is not of the current CUDA context";
    default: return "unknown evp_status";
  }
}

const char *evp_last_error(void) { return evp::last_error; }

int evp_geometry_of(int width, int height, const evp_geometry *g, int *resized_w, int *resized_h, int *top,
                    int *left) {
  if (!resized_w || !resized_h || !top || !left)
    return evp::fail(EVP_ERR_ARGUMENT, "evp_geometry_of: an output pointer is NULL");
  int status = evp::check_geometry(g);
  if (status == EVP_OK) status = evp::check_frame_size(width, height);
  if (status != EVP_OK) return status;
  /* Python's round() is half-to-even on the double product, which nearbyint gives in the default mode */
  const double scale = g->resize_short / (double)(width < height ? width : height);
  const double rw = nearbyint(width * scale), rh = nearbyint(height * scale);
  if (rw > evp::kMaxSide || rh > evp::kMaxSide)
    return evp::fail(EVP_ERR_ARGUMENT, "a %dx%d frame resized to short side %d is over %d pixels a side", width,
                     height, g->resize_short, evp::kMaxSide);
  *resized_w = rw < g->crop ? g->crop : (int)rw;
  *resized_h = rh < g->crop ? g->crop : (int)rh;
  *top = (*resized_h - g->crop) / 2;
  *left = (*resized_w - g->crop) / 2;
  return EVP_OK;
}

int evp_host_crop(const evp_frame *frame, const evp_geometry *g, uint8_t *crop) {
  const int status = evp::validate_crop(frame, g, crop);
  if (status != EVP_OK) return status;
  const evp::CropPlan p = evp::plan_crop(frame, g);
  for (int y = 0; y < p.crop; ++y)
    for (int x = 0; x < p.crop; ++x)
      evp::resized_pixel(p.src, p.resize, p.left + x, p.top + y, crop + ((int64_t)y * p.crop + x) * 3);
  return EVP_OK;
}

int evp_host_tensor(const uint8_t *crop, int crop_size, int size, const float mul[3], const float add[3], int dtype,
                    void *out, int64_t channel_stride) {
  const int status = evp::validate_tensor(crop, crop_size, size, mul, add, dtype, out, channel_stride);
  if (status != EVP_OK) return status;
  const evp::TensorPlan p = evp::plan_tensor(crop, crop_size, size, mul, add);
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      uint8_t px[3];
      evp::resized_pixel(p.src, p.resize, x, y, px);
      evp::store_tensor(px, p.norm, dtype, out, (int64_t)y * size + x, channel_stride);
    }
  }
  return EVP_OK;
}

}  // extern "C"
