# S2's Python REST client, copied unchanged from its guide (the seed of issue 9): the
# conformance tests call it as S2's users do, so it is neither linted, formatted nor typed.
# ruff: noqa
# mypy: ignore-errors
# fmt: off
import requests
import json
from pathlib import Path

class VoiceChatAPI:
    def __init__(self, base_url: str, auth_token: str):
        self.base_url = base_url
        self.headers = {'Authorization': f'Bearer {auth_token}'}
    
    def voice_chat(self, chatbot_id: str, audio_file_path: str, 
                   conversation_id: str = None, voice_config: dict = None):
        """Process voice message through full pipeline"""
        url = f"{self.base_url}/api/v1/voice/chat"
        
        files = {'audio_file': open(audio_file_path, 'rb')}
        data = {'chatbot_id': chatbot_id}
        
        if conversation_id:
            data['conversation_id'] = conversation_id
        if voice_config:
            data['voice_config'] = json.dumps(voice_config)
        
        response = requests.post(url, files=files, data=data, headers=self.headers)
        
        if response.status_code == 200:
            result = response.json()
            # Save audio response
            if hasattr(result, 'audio_data'):
                with open('response_audio.mp3', 'wb') as f:
                    f.write(result.audio_data)
            return result
        else:
            raise Exception(f"Voice chat failed: {response.text}")
    
    def text_to_speech(self, text: str, voice: str = "aura-asteria-en", 
                       output_file: str = "tts_output.mp3"):
        """Convert text to speech"""
        url = f"{self.base_url}/api/v1/voice/tts"
        
        payload = {
            "text": text,
            "voice": voice,
            "encoding": "mp3",
            "sample_rate": 24000
        }
        
        response = requests.post(url, json=payload, headers=self.headers)
        
        if response.status_code == 200:
            with open(output_file, 'wb') as f:
                f.write(response.content)
            return output_file
        else:
            raise Exception(f"TTS failed: {response.text}")
    
    def speech_to_text(self, audio_file_path: str, language: str = None):
        """Convert speech to text"""
        url = f"{self.base_url}/api/v1/voice/stt"
        
        files = {'audio_file': open(audio_file_path, 'rb')}
        data = {}
        
        if language:
            data['language'] = language
        
        response = requests.post(url, files=files, data=data, headers=self.headers)
        
        if response.status_code == 200:
            return response.json()
        else:
            raise Exception(f"STT failed: {response.text}")
    
    def get_available_voices(self):
        """Get list of available TTS voices"""
        url = f"{self.base_url}/api/v1/voice/voices"
        response = requests.get(url, headers=self.headers)
        
        if response.status_code == 200:
            return response.json()
        else:
            raise Exception(f"Failed to get voices: {response.text}")
    
    def get_voice_config(self, chatbot_id: str):
        """Get voice configuration for chatbot"""
        url = f"{self.base_url}/api/v1/voice/config/{chatbot_id}"
        response = requests.get(url, headers=self.headers)
        
        if response.status_code == 200:
            return response.json()
        else:
            raise Exception(f"Failed to get config: {response.text}")
    
    def update_voice_config(self, chatbot_id: str, config: dict):
        """Update voice configuration"""
        url = f"{self.base_url}/api/v1/voice/config/{chatbot_id}"
        response = requests.put(url, json=config, headers=self.headers)
        
        if response.status_code == 200:
            return response.json()
        else:
            raise Exception(f"Failed to update config: {response.text}")
