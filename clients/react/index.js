export { VoiceChat, useVoiceChat, default } from './VoiceChat.jsx';
