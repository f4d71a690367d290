// Nuxt configuration for the vue-developer sandbox: no devtools, Tailwind CSS, and Vite's
// hot-module-reload socket over wss because the sandbox is reached through E2B's HTTPS proxy.
// @ts-ignore defineNuxtConfig is a Nuxt auto-import
export default defineNuxtConfig({
  compatibilityDate: '2024-04-03',
  devtools: { enabled: false },
  modules: ['@nuxtjs/tailwindcss'],
  vite: {
    server: {
      hmr: { protocol: 'wss' },
    },
  },
})
