/*
 * A pretend CUDA device for benchmarks/cuda_compile_check.py, loaded with LD_PRELOAD.
 *
 * GeNN's CUDA backend asks the CUDA runtime for a device before it generates code (the
 * compute capability becomes nvcc's -arch, the device's limits the block sizes) and,
 * to choose block sizes, compiles each kernel module to a cubin and reads its resource
 * use through the driver API. On a machine with nvcc but no GPU those queries fail and
 * GeNN exits. This library answers them as one compute-capability 9.0 device would
 * (an H100-like sm_90 part), so GeNN generates the code a real sm_90 build gets and nvcc
 * compiles it; allocating memory, copying or launching are not faked, so loading the
 * model fails, and the check never loads one.
 *
 * Built at check time against $CUDA_PATH's headers (cc -shared -fPIC -I$CUDA_PATH/include),
 * so the structure layouts and versioned entry points match the toolkit PyGeNN uses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda.h>
#include <cuda_runtime_api.h>

#define FAKE_MAJOR 9
#define FAKE_MINOR 0

/* ---- CUDA runtime: device queries ------------------------------------------------ */

static void fill_properties(struct cudaDeviceProp *p)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "pretend sm_%d%d device (cuda_fake_device.c)",
             FAKE_MAJOR, FAKE_MINOR);
    p->major = FAKE_MAJOR;
    p->minor = FAKE_MINOR;
    p->totalGlobalMem = (size_t)80 << 30;
    p->sharedMemPerBlock = 48 << 10;
    p->sharedMemPerBlockOptin = 227 << 10;
    p->sharedMemPerMultiprocessor = 228 << 10;
    p->regsPerBlock = 65536;
    p->regsPerMultiprocessor = 65536;
    p->warpSize = 32;
    p->memPitch = (size_t)2147483647;
    p->maxThreadsPerBlock = 1024;
    p->maxThreadsDim[0] = 1024;
    p->maxThreadsDim[1] = 1024;
    p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 2147483647;
    p->maxGridSize[1] = 65535;
    p->maxGridSize[2] = 65535;
    p->totalConstMem = 64 << 10;
    p->textureAlignment = 512;
    p->multiProcessorCount = 132;
    p->maxThreadsPerMultiProcessor = 2048;
    p->maxBlocksPerMultiProcessor = 32;
    p->l2CacheSize = 50 << 20;
    p->memoryBusWidth = 5120;
    p->canMapHostMemory = 1;
    p->unifiedAddressing = 1;
    p->concurrentKernels = 1;
    p->asyncEngineCount = 2;
    p->pciBusID = 1;
}

cudaError_t CUDARTAPI cudaGetDeviceCount(int *count)
{
    *count = 1;
    return cudaSuccess;
}

cudaError_t CUDARTAPI cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device)
{
    if (device != 0)
        return cudaErrorInvalidDevice;
    fill_properties(prop);
    return cudaSuccess;
}

/* CUDA 12 toolkits export the same query as cudaGetDeviceProperties_v2 */
cudaError_t CUDARTAPI cudaGetDeviceProperties_v2(struct cudaDeviceProp *prop, int device);
cudaError_t CUDARTAPI cudaGetDeviceProperties_v2(struct cudaDeviceProp *prop, int device)
{
    return cudaGetDeviceProperties(prop, device);
}

cudaError_t CUDARTAPI cudaSetDevice(int device)
{
    return device == 0 ? cudaSuccess : cudaErrorInvalidDevice;
}

cudaError_t CUDARTAPI cudaGetDevice(int *device)
{
    *device = 0;
    return cudaSuccess;
}

cudaError_t CUDARTAPI cudaSetDeviceFlags(unsigned int flags)
{
    (void)flags;
    return cudaSuccess;
}

cudaError_t CUDARTAPI cudaDriverGetVersion(int *version)
{
    *version = CUDA_VERSION;
    return cudaSuccess;
}

/* ---- CUDA driver: what GeNN's block-size optimiser uses --------------------------- */

/* a loaded cubin: its bytes, searched for kernel names */
struct fake_module {
    char *bytes;
    size_t size;
};

static int fake_context;
static int fake_function;

CUresult CUDAAPI cuInit(unsigned int flags)
{
    (void)flags;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDriverGetVersion(int *version)
{
    *version = CUDA_VERSION;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGetCount(int *count)
{
    *count = 1;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDeviceGet(CUdevice *device, int ordinal)
{
    if (ordinal != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    *device = 0;
    return CUDA_SUCCESS;
}

#if CUDA_VERSION >= 13000
CUresult CUDAAPI cuCtxCreate(CUcontext *pctx, CUctxCreateParams *params, unsigned int flags,
                             CUdevice dev)
{
    (void)params;
#else
CUresult CUDAAPI cuCtxCreate(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
#endif
    (void)flags;
    (void)dev;
    *pctx = (CUcontext)&fake_context;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxSetCurrent(CUcontext ctx)
{
    (void)ctx;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxDestroy(CUcontext ctx)
{
    (void)ctx;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuModuleLoad(CUmodule *module, const char *fname)
{
    FILE *f = fopen(fname, "rb");
    struct fake_module *m;
    long size;
    if (f == NULL)
        return CUDA_ERROR_FILE_NOT_FOUND;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    m = calloc(1, sizeof(*m));
    m->bytes = malloc(size > 0 ? (size_t)size : 1);
    m->size = fread(m->bytes, 1, size > 0 ? (size_t)size : 0, f);
    fclose(f);
    *module = (CUmodule)m;
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuModuleUnload(CUmodule module)
{
    struct fake_module *m = (struct fake_module *)module;
    if (m != NULL) {
        free(m->bytes);
        free(m);
    }
    return CUDA_SUCCESS;
}

/* a kernel is "in" the module when its name occurs in the cubin (its symbol table) */
CUresult CUDAAPI cuModuleGetFunction(CUfunction *hfunc, CUmodule module, const char *name)
{
    const struct fake_module *m = (const struct fake_module *)module;
    size_t n = strlen(name);
    size_t i;
    if (m == NULL || n == 0 || n > m->size)
        return CUDA_ERROR_NOT_FOUND;
    for (i = 0; i + n <= m->size; i++) {
        if (memcmp(m->bytes + i, name, n) == 0) {
            *hfunc = (CUfunction)&fake_function;
            return CUDA_SUCCESS;
        }
    }
    return CUDA_ERROR_NOT_FOUND;
}

/* typical resource use of GeNN's kernels: 32 registers, no static shared memory */
CUresult CUDAAPI cuFuncGetAttribute(int *value, CUfunction_attribute attribute, CUfunction f)
{
    (void)f;
    switch (attribute) {
    case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *value = 1024; break;
    case CU_FUNC_ATTRIBUTE_NUM_REGS: *value = 32; break;
    case CU_FUNC_ATTRIBUTE_PTX_VERSION:
    case CU_FUNC_ATTRIBUTE_BINARY_VERSION: *value = 10 * FAKE_MAJOR + FAKE_MINOR; break;
    default: *value = 0; break;
    }
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGetErrorName(CUresult error, const char **name)
{
    *name = error == CUDA_SUCCESS ? "CUDA_SUCCESS" : "CUDA_ERROR_FAKE_DEVICE";
    return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGetErrorString(CUresult error, const char **text)
{
    *text = error == CUDA_SUCCESS ? "no error" : "not answered by the pretend device";
    return CUDA_SUCCESS;
}
