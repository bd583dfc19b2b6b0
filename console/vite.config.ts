import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

// Served by the kernel at /console (platform/src/console.ts): hashed assets under /console/assets/.
export default defineConfig({
  base: '/console/',
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, modulePreload: { polyfill: false } },
})
